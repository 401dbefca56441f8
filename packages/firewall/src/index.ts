/**
 * @packageDocumentation
 * nftables and iptables management without a shell: bans with expiry in our own table, allowed
 * and denied ports, anti-lockout, a state file and `restore()`, and a bridge for guards' ban hook.
 *
 * @example
 * ```ts
 * import { createFirewall } from '@sock/firewall';
 *
 * const fw = createFirewall({ backend: 'auto', stateFile: '/var/lib/sock/firewall.json' });
 * await fw.init();
 * await fw.ban('203.0.113.7', { ttl: '10m', reason: 'ssh brute force' });
 * console.log(await fw.list());
 * ```
 */
export {
  type IpFamily,
  type IpTarget,
  type ParseTargetOptions,
  parseTarget,
} from './address.js';
export {
  type BanBridge,
  type BanBridgeOptions,
  type BanBridgeStats,
  type BanEvent,
  createBanBridge,
} from './bridge.js';
export { type DetectOptions, detectBackend } from './detect.js';
export type { KernelBackend } from './driver.js';
export { type Duration, MAX_DURATION_MS, parseDuration } from './duration.js';
export { FirewallError, FirewallErrorCode, type FirewallErrorOptions } from './errors.js';
export {
  type ApplyResult,
  type BackendName,
  type BanInfo,
  type BanManyOptions,
  type BanOptions,
  type BanRequest,
  createFirewall,
  type Firewall,
  type FirewallOptions,
  type OperationOptions,
  type PortRuleOptions,
  type SkippedBan,
} from './firewall.js';
export type { LockoutOptions } from './lockout.js';
export type { PortRule } from './model.js';
export { type Protocol, parsePort, parseProtocol } from './port.js';
export {
  type BinaryName,
  type Command,
  type CommandResult,
  type CommandRunner,
  type CommandRunnerOptions,
  createCommandRunner,
  INPUT_FILE,
} from './runner.js';
