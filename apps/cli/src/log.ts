import { type Logger, pino } from 'pino';
import { style } from './style.js';

export type LogFormat = 'json' | 'pretty';

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/**
 * Logs go to stderr (stdout carries data): pino JSON lines with `--log json`, one readable line per
 * record with `--log pretty`. Without `--log` only warnings and errors are printed, pretty.
 */
export function createLogger(format: LogFormat | undefined, level?: string): Logger {
  const lvl = level ?? (format ? 'info' : 'warn');
  if (format === 'json') return pino({ level: lvl, base: { pid: process.pid } }, process.stderr);
  const s = style(process.stderr);
  const destination = {
    write(line: string) {
      try {
        const {
          level: n,
          time,
          msg,
          pid: _pid,
          hostname: _h,
          ...rest
        } = JSON.parse(line) as Record<string, unknown>;
        const name = LEVELS[n as number] ?? String(n);
        const coloured =
          (n as number) >= 50 ? s.red(name) : (n as number) >= 40 ? s.yellow(name) : s.green(name);
        const extra = Object.entries(rest)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ');
        const clock = new Date(time as number).toISOString().slice(11, 23);
        process.stderr.write(
          `${s.dim(clock)} ${coloured} ${String(msg ?? '')}${extra ? ` ${s.dim(extra)}` : ''}\n`,
        );
      } catch {
        process.stderr.write(line);
      }
    },
  };
  return pino({ level: lvl, base: null }, destination);
}
