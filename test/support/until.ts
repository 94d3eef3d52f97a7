// Polls a condition until it holds, failing after a generous deadline: for waiting on work in
// another process or thread, never for asserting how long it took.
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  for (let waited = 0; !(await condition()); waited += 10) {
    if (waited > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
