/** One row of the tour: what a defence should do, and what the scripted client saw it do. */
export interface ScenarioResult {
  scenario: string;
  expected: string;
  observed: string;
  ok: boolean;
}

export function printTable(results: ScenarioResult[]): string {
  const head = ['', 'scenario', 'expected', 'observed'];
  const rows = results.map((r) => [r.ok ? 'ok' : 'FAIL', r.scenario, r.expected, r.observed]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Run a scenario with a deadline so a broken defence fails its row instead of hanging the tour. */
export async function runScenario(
  name: string,
  expected: string,
  run: () => Promise<{ observed: string; ok: boolean }>,
  timeoutMs = 10_000,
): Promise<ScenarioResult> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      run(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no outcome within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { scenario: name, expected, ...result };
  } catch (err) {
    return { scenario: name, expected, observed: `error: ${(err as Error).message}`, ok: false };
  } finally {
    clearTimeout(timer);
  }
}
