/**
 * @packageDocumentation
 * **Not for users.** Helpers the sock packages share with each other (`@sock/guards`, `@sock/udp`,
 * `@sock/firewall`, …): they may change or go in any release, without a major version. Import from
 * `@sock/core` (and `@sock/core/testing` in tests) instead.
 */
export { canonicalPeer } from './address.js';
export { backoffDelay } from './backoff.js';
export { systemClock, unrefTimer } from './clock.js';
export { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './ip-address.js';
export { notify } from './observer.js';
