// Type tests (vitest typecheck) for guards' policy objects and reasons: what a policy may say, checked
// by the compiler before the runtime validator sees it.
import { createGuards, GuardReason, type GuardsPolicy } from '@sock/guards';
import { describe, expectTypeOf, it } from 'vitest';

describe('policy objects', () => {
  it('accepts durations as ms or strings, and sections may be switched off', () => {
    createGuards({
      timeouts: { firstFrame: '10s', idle: 300_000, minRate: false },
      rates: { connections: { rate: 5, per: '1s', burst: 10 }, onExceed: 'tarpit', tarpit: '2s' },
      bans: { duration: '10m', neverBan: ['10.0.0.0/8'] },
    });
    createGuards({ rates: { connections: false } });
  });

  it('refuses what the policy does not know, at compile time', () => {
    // @ts-expect-error an unknown action
    createGuards({ rates: { onExceed: 'explode' } });
    // @ts-expect-error an unknown section
    const typo: GuardsPolicy = { rate: {} };
    // @ts-expect-error a threshold is a number
    createGuards({ strikes: { threshold: 'five' } });
    void typo;
  });

  it('GuardReason values are literal types and the union is exact', () => {
    expectTypeOf(GuardReason.CONN_LIMIT_IP).toEqualTypeOf<'conn-limit-ip'>();
    expectTypeOf<'conn-limit-ip'>().toExtend<GuardReason>();
    expectTypeOf<'not-a-reason'>().not.toExtend<GuardReason>();
  });
});
