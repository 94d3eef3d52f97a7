// Deterministic made-up domain names, so every run (and every machine) benchmarks the same
// blocklist and the same rule hosts: a seeded generator, not Math.random.

const TLDS = ['com', 'net', 'org', 'info', 'xyz', 'top', 'ru', 'cn', 'io', 'co.uk'] as const;
const CHARACTERS = 'abcdefghijklmnopqrstuvwxyz0123456789-';

export class NameGenerator {
  constructor(private seed: number) {}

  /** An integer in [0, n): a linear congruential step, plenty for spreading names. */
  random(n: number): number {
    this.seed = (Math.imul(this.seed, 1103515245) + 12345) & 0x7fffffff;
    return this.seed % n;
  }

  /** 4-15 characters; a hyphen never first or last (RFC 1123). */
  label(): string {
    const length = 4 + this.random(12);
    let text = '';
    for (let i = 0; i < length; i++) text += CHARACTERS[this.random(i === 0 || i === length - 1 ? 36 : 37)];
    return text;
  }

  /** A registrable-looking name, a third of them one level deeper. */
  domain(): string {
    const deeper = this.random(3) === 0 ? `${this.label()}.` : '';
    const registrable = this.label();
    return `${deeper}${registrable}.${TLDS[this.random(TLDS.length)] ?? 'com'}`;
  }

  domains(count: number): string[] {
    const names: string[] = [];
    for (let i = 0; i < count; i++) names.push(this.domain());
    return names;
  }
}
