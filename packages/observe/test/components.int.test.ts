import { Registry } from 'prom-client';
import { expect, it } from 'vitest';
import type { FirewallBridgeStats, GuardsStats, SshStats, TlsStats, UdpStats } from '../src/components.js';
import { prometheusMetrics } from '../src/prometheus.js';
import { promtool, sample } from './helpers.js';

// The stats() shapes of the contract between the component owners and this package. Components on this
// branch do not have them yet: these stand-ins have exactly the contract's shape, and the coordinator
// re-runs this file with the real components after merging (see the package README).
const guards: { stats(): GuardsStats } = {
  stats: () => ({
    keys: 12,
    maxKeys: 100_000,
    evictions: 3,
    strikes: 40,
    bansIssued: 5,
    bansActive: 2,
    banStoreFailures: 1,
    store: { kind: 'redis', healthy: false, fallbackDecisions: 9, errors: 4 },
  }),
};
const now = Date.UTC(2026, 0, 1);
const tls: { stats(): TlsStats } = {
  stats: () => ({
    handshakes: 100,
    handshakeFailures: 7,
    reloads: 2,
    reloadFailures: 1,
    renegotiationAttempts: 3,
    certificates: [{ subject: 'CN=localhost', notAfter: now + 86_400_000 }],
  }),
};
const udp: { stats(): UdpStats } = {
  stats: () => ({
    datagramsIn: 50,
    datagramsOut: 20,
    bytesIn: 5000,
    bytesOut: 900,
    dropped: 6,
    amplificationRefusals: 8,
    unvalidated: 11,
  }),
};
const firewall: { stats(): FirewallBridgeStats } = {
  stats: () => ({ batches: 4, applied: 5, failed: 1, pending: 2 }),
};
const ssh: { stats(): SshStats } = {
  stats: () => ({ handshakes: 9, authFailures: 6, channelsOpen: 1, channelsTotal: 3 }),
};
const ipsec = { stats: () => ({ sasUp: 2, rekeys: 5, name: 'not a number' }) };

it("one call exports every component's contract stats, promtool-clean", async () => {
  const registry = new Registry();
  prometheusMetrics(registry, { components: { guards, tls, udp, firewall, ssh, ipsec }, now: () => now });
  const body = await registry.metrics();
  const expected: Record<string, number> = {
    sock_guards_keys: 12,
    sock_guards_keys_max: 100_000,
    sock_guards_evictions_total: 3,
    sock_guards_strikes_total: 40,
    sock_guards_bans_issued_total: 5,
    sock_guards_bans_active: 2,
    sock_guards_ban_store_failures_total: 1,
    'sock_guards_store_healthy{store="redis"}': 0,
    'sock_guards_store_fallback_decisions_total{store="redis"}': 9,
    'sock_guards_store_errors_total{store="redis"}': 4,
    sock_tls_handshakes_total: 100,
    sock_tls_handshake_failures_total: 7,
    sock_tls_reloads_total: 2,
    sock_tls_reload_failures_total: 1,
    sock_tls_renegotiation_attempts_total: 3,
    'sock_tls_certificate_expiry_seconds{certificate="CN=localhost"}': 86_400,
    sock_udp_received_datagrams_total: 50,
    sock_udp_sent_datagrams_total: 20,
    sock_udp_received_bytes_total: 5000,
    sock_udp_sent_bytes_total: 900,
    sock_udp_dropped_datagrams_total: 6,
    sock_udp_amplification_refusals_total: 8,
    sock_udp_unvalidated_datagrams_total: 11,
    sock_firewall_batches_total: 4,
    sock_firewall_bans_applied_total: 5,
    sock_firewall_failures_total: 1,
    sock_firewall_pending_bans: 2,
    sock_ssh_handshakes_total: 9,
    sock_ssh_auth_failures_total: 6,
    sock_ssh_channels_open: 1,
    sock_ssh_channels_opened_total: 3,
    'sock_ipsec_stat{field="sasUp"}': 2,
    'sock_ipsec_stat{field="rekeys"}': 5,
  };
  for (const [series, value] of Object.entries(expected))
    expect([series, sample(body, series)]).toEqual([series, value]);
  expect(body).not.toContain('field="name"');
  expect(await promtool(body)).toEqual({ code: 0, out: '' });
});

it('a component without stats() adds nothing; one whose stats() throws is counted and the scrape goes on', async () => {
  const registry = new Registry();
  let broken = false;
  const flaky = {
    stats: () => {
      if (broken) throw new Error('store gone');
      return { keys: 1 };
    },
  };
  prometheusMetrics(registry, { components: { guards: flaky, tls: {} } });
  expect(sample(await registry.metrics(), 'sock_guards_keys')).toBe(1);
  broken = true;
  const body = await registry.metrics();
  // prom-client renders an unlabelled family as 0 when it has no value; the error counter says why.
  expect(sample(body, 'sock_guards_keys') ?? 0).toBe(0);
  expect(sample(body, 'sock_observe_read_errors_total{component="guards"}')).toBe(1);
  expect(body).not.toContain('sock_tls_');
});
