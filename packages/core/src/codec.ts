import type { StandardSchemaV1 } from '@standard-schema/spec';
import { SockError, SockErrorCode } from './errors.js';
import { SockReason } from './reasons.js';
import { validate } from './validate.js';

/** Turns frames into messages and back. `decode` throws a SockError for input it refuses. */
export interface Codec<In, Out = In> {
  readonly name: string;
  decode(frame: Buffer): In | Promise<In>;
  encode(message: Out): Uint8Array;
}

/** Frames as they are (the default). */
export function bytes(): Codec<Buffer, Uint8Array> {
  return { name: 'bytes', decode: (frame) => frame, encode: (message) => message };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Frames as UTF-8 strings; a frame that is not valid UTF-8 is refused with ERR_SOCK_INVALID_MESSAGE. */
export function text(): Codec<string> {
  return {
    name: 'text',
    decode(frame) {
      try {
        return strictUtf8.decode(frame);
      } catch (cause) {
        throw new SockError(SockErrorCode.INVALID_MESSAGE, 'frame is not valid UTF-8', {
          cause,
          reason: SockReason.INVALID_MESSAGE,
        });
      }
    },
    encode: (message) => Buffer.from(message, 'utf8'),
  };
}

export interface JsonOptions<T> {
  /** Any Standard Schema (zod, valibot, arktype, …): decoded values are validated with it. */
  schema?: StandardSchemaV1<unknown, T>;
}

/**
 * One JSON value per frame. Invalid JSON is ERR_SOCK_INVALID_MESSAGE; with a schema, a value that fails
 * it is ERR_SOCK_VALIDATION_FAILED with the schema's issues. Outbound messages are not validated.
 */
export function json<T = unknown, Out = unknown>(options: JsonOptions<T> = {}): Codec<T, Out> {
  const { schema } = options;
  const parse = (frame: Buffer): unknown => {
    try {
      return JSON.parse(frame.toString('utf8'));
    } catch (cause) {
      throw new SockError(
        SockErrorCode.INVALID_MESSAGE,
        `frame is not valid JSON: ${(cause as Error).message}`,
        {
          cause,
          reason: SockReason.INVALID_MESSAGE,
        },
      );
    }
  };
  return {
    name: 'json',
    decode: schema ? (frame) => validate(schema, parse(frame)) : (frame) => parse(frame) as T,
    encode(message) {
      const encoded = JSON.stringify(message);
      if (encoded === undefined) {
        throw new SockError(SockErrorCode.INVALID_MESSAGE, `cannot encode ${typeof message} as JSON`);
      }
      return Buffer.from(encoded, 'utf8');
    },
  };
}
