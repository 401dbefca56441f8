import { contains, type IpTarget, parseTarget } from './address.js';
import { FirewallError, FirewallErrorCode } from './errors.js';

/**
 * Addresses no packet comes from, or that a kernel set refuses (ipset: "Zero valued IP address"), so
 * a ban on them would either fail the whole batch on one backend or mean nothing on the other. The
 * same rule for every backend, checked before any command runs.
 */
const UNBANNABLE: readonly { range: IpTarget; why: string }[] = [
  {
    range: parseTarget('0.0.0.0/8', { allowBroadPrefix: true }),
    why: 'the unspecified "this network" block',
  },
  { range: parseTarget('224.0.0.0/4', { allowBroadPrefix: true }), why: 'multicast, never a source' },
  { range: parseTarget('255.255.255.255'), why: 'the broadcast address, never a source' },
  { range: parseTarget('::'), why: 'the unspecified address' },
  { range: parseTarget('ff00::/8', { allowBroadPrefix: true }), why: 'multicast, never a source' },
];

/** Throw `ERR_SOCK_FW_UNBANNABLE` for a target inside one of those ranges, or a /0 (everything). */
export function assertBannable(target: IpTarget): void {
  let why: string | undefined;
  if (target.prefix === 0) why = 'a /0 is every address (ipset refuses it)';
  else why = UNBANNABLE.find((u) => contains(u.range, target))?.why;
  if (why === undefined) return;
  throw new FirewallError(
    FirewallErrorCode.UNBANNABLE,
    `refusing to ban ${target.text}: it is ${why}; no backend can ban it meaningfully, so it is left out`,
    { details: { target: target.text } },
  );
}
