import type { StandardSchemaV1 } from '@standard-schema/spec';
import { SockError, SockErrorCode } from './errors.js';
import { SockReason } from './reasons.js';

/**
 * Validate `value` with any Standard Schema. Returns the schema's output, synchronously when the schema
 * is synchronous; throws (or rejects with) ERR_SOCK_VALIDATION_FAILED carrying the issues.
 */
export function validate<T>(schema: StandardSchemaV1<unknown, T>, value: unknown): T | Promise<T> {
  const result = schema['~standard'].validate(value);
  return result instanceof Promise ? result.then(unwrap) : unwrap(result);
}

function unwrap<T>(result: StandardSchemaV1.Result<T>): T {
  if (result.issues === undefined) return result.value;
  const first = result.issues[0];
  const where = first?.path?.length
    ? ` at ${first.path.map((p) => String(typeof p === 'object' ? p.key : p)).join('.')}`
    : '';
  throw new SockError(
    SockErrorCode.VALIDATION_FAILED,
    `message failed validation${where}: ${first?.message ?? 'invalid'}` +
      (result.issues.length > 1 ? ` (and ${result.issues.length - 1} more issues)` : ''),
    { issues: result.issues, reason: SockReason.VALIDATION_FAILED },
  );
}
