import { SockError, SockErrorCode } from '@sock/core';

/** Default largest payload: safe on any path without fragmentation (DNS flag day 2020). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1232;
/** Largest payload of one IPv4 UDP datagram (65,535 − 20 IP − 8 UDP header bytes). */
export const MAX_UDP_PAYLOAD_BYTES = 65_507;

/** `value` (default 1232) checked to be an integer from 1 to 65,507. */
export function checkPayloadLimit(value: number | undefined, what: string): number {
  const limit = value ?? DEFAULT_MAX_PAYLOAD_BYTES;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_UDP_PAYLOAD_BYTES) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `${what} must be an integer from 1 to ${MAX_UDP_PAYLOAD_BYTES}, got ${limit}`,
    );
  }
  return limit;
}
