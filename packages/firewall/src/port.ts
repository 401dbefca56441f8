import { FirewallError, FirewallErrorCode, quote } from './errors.js';

/** Transport protocols a port rule may name. */
export type Protocol = 'tcp' | 'udp';

const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp'];

/** Parse a port given as an integer or a decimal ASCII string; 1..65535. */
export function parsePort(input: unknown): number {
  let n: number | undefined;
  if (typeof input === 'number' && Number.isInteger(input)) n = input;
  else if (typeof input === 'string' && /^[1-9][0-9]{0,4}$/.test(input)) n = Number(input);
  if (n === undefined || n < 1 || n > 65535) {
    throw new FirewallError(
      FirewallErrorCode.INVALID_PORT,
      `invalid port ${quote(input)}: pass an integer from 1 to 65535`,
      { details: { input } },
    );
  }
  return n;
}

/** Parse a protocol name: exactly `tcp` or `udp` (lower case). */
export function parseProtocol(input: unknown): Protocol {
  if (typeof input === 'string' && (PROTOCOLS as readonly string[]).includes(input)) return input as Protocol;
  throw new FirewallError(
    FirewallErrorCode.INVALID_PROTOCOL,
    `invalid protocol ${quote(input)}: pass 'tcp' or 'udp'`,
    { details: { input } },
  );
}
