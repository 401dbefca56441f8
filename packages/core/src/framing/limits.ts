import { SockError, SockErrorCode } from '../errors.js';
import { SockReason } from '../reasons.js';

export function checkMaxFrameBytes(name: string, value: number, ceiling: number): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > ceiling) {
    throw new SockError(
      SockErrorCode.INVALID_OPTION,
      `${name}: maxFrameBytes must be an integer from 1 to ${ceiling}, got ${String(value)}`,
    );
  }
  return value;
}

export function frameTooLarge(direction: 'inbound' | 'outbound', size: number, max: number): SockError {
  const advice =
    direction === 'inbound'
      ? 'the peer sent more than this server accepts'
      : 'raise maxFrameBytes or split the message';
  return new SockError(
    SockErrorCode.FRAME_TOO_LARGE,
    `${direction} frame of ${size} bytes exceeds maxFrameBytes ${max}; ${advice}`,
    { reason: SockReason.FRAME_TOO_LARGE },
  );
}
