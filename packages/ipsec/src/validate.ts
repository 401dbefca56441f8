import { isAbsolute } from 'node:path';
import { type IpTarget, parseTarget } from '@sock/firewall';
import { IpsecError, IpsecErrorCode, quote } from './errors.js';

function invalid(field: string, input: unknown, why: string): IpsecError {
  return new IpsecError(IpsecErrorCode.INVALID_OPTION, `${field}: ${quote(input)} ${why}`, {
    details: { field },
  });
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A connection or child name: what charon keys its config by and what shows in logs. */
export function checkName(field: string, input: unknown): string {
  if (typeof input !== 'string' || !NAME.test(input))
    throw invalid(field, input, 'is not a name: use 1-64 of [A-Za-z0-9._-], starting with a letter or digit');
  return input;
}

/**
 * An IKE identity: an FQDN, an email address or a distinguished name such as `CN=gw.example`. Wildcards
 * (`%any`, `*`) are refused: the peer must be named.
 */
const IDENTITY = /^[A-Za-z0-9][A-Za-z0-9 .,@=:_+/-]{0,254}$/;
export function checkIdentity(field: string, input: unknown): string {
  if (typeof input !== 'string' || !IDENTITY.test(input) || input.endsWith(' '))
    throw invalid(
      field,
      input,
      'is not an identity: an FQDN (gw.example), an email or a DN (CN=gw.example), at most 255 characters, no wildcards',
    );
  return input;
}

function viaFirewall(field: string, input: unknown, single: boolean): IpTarget {
  let target: IpTarget;
  try {
    target = parseTarget(input, { allowBroadPrefix: true });
  } catch (err) {
    throw new IpsecError(IpsecErrorCode.INVALID_OPTION, `${field}: ${(err as Error).message}`, {
      cause: err,
      details: { field },
    });
  }
  if (single && target.kind !== 'address')
    throw invalid(field, input, 'must be a single address, not a CIDR');
  return target;
}

/** One IP address (v4 or v6), canonical. */
export function checkAddress(field: string, input: unknown): string {
  return viaFirewall(field, input, true).text;
}

/** An address or CIDR (a traffic selector), canonical with host bits cleared. */
export function checkCidr(field: string, input: unknown): IpTarget {
  return viaFirewall(field, input, false);
}

/** A non-empty list of CIDRs, capped so a config cannot grow without bound. */
export function checkCidrs(field: string, input: unknown, max = 64): IpTarget[] {
  if (!Array.isArray(input) || input.length === 0 || input.length > max)
    throw invalid(field, input, `must be a list of 1 to ${max} addresses or CIDRs`);
  return input.map((v, i) => checkCidr(`${field}[${i}]`, v));
}

/** An absolute path without NUL or control characters (relative paths depend on where charon runs). */
export function checkPath(field: string, input: unknown): string {
  if (typeof input !== 'string' || input.length === 0 || input.length > 4096 || /[\u0000-\u001f]/.test(input))
    throw invalid(field, input, 'is not a usable path');
  if (!isAbsolute(input)) throw invalid(field, input, 'must be an absolute path');
  return input;
}

/** Whole seconds in [min, max]. */
export function checkSeconds(field: string, input: unknown, min: number, max: number): number {
  if (typeof input !== 'number' || !Number.isInteger(input) || input < min || input > max)
    throw invalid(field, input, `must be a whole number of seconds from ${min} to ${max}`);
  return input;
}
