// Reads Sluice's /metrics (Prometheus text format) the way a scraper would, to check what a
// generated config really loaded and to read the event-loop figures of prom-client's defaults.
import { get } from 'node:http';

/** One scrape: every sample as `name{labels}` → value, labels exactly as exposed. */
export type Scrape = ReadonlyMap<string, number>;

export function scrape(port: number): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const request = get({ host: '127.0.0.1', port, path: '/metrics' }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.once('end', () => {
        if (response.statusCode !== 200) reject(new Error(`/metrics answered ${response.statusCode}`));
        else resolve(parse(text));
      });
    });
    request.once('error', reject);
    request.setTimeout(5_000, () => request.destroy(new Error('/metrics did not answer within 5 s')));
  });
}

function parse(text: string): Scrape {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** The sum of every sample of `name` whose labels include each of `labels` (`key="value"`). */
export function sampleSum(samples: Scrape, name: string, ...labels: readonly string[]): number {
  let total = 0;
  for (const [key, value] of samples) {
    const brace = key.indexOf('{');
    if ((brace < 0 ? key : key.slice(0, brace)) !== name) continue;
    if (labels.every((label) => key.includes(label))) total += value;
  }
  return total;
}
