/**
 * Bounds the values one label may take. Reason codes, stages and plug-in names come from code and are
 * finite, but a third-party plug-in may put anything in a reason: after `max` distinct values, or for a
 * value that does not match `pattern` (by default a code: lower-case, digits, `-`, `_`, `.`, at most 48
 * characters), the label reads `other`. A label never holds an address, so a scan from a million sources
 * adds no series.
 */
export type LabelCap = (value: string | undefined) => string;

const CODE = /^[a-z0-9][a-z0-9_.-]{0,47}$/;
const OTHER = 'other';

export function labelCap(max: number, options: { fallback?: string; pattern?: RegExp } = {}): LabelCap {
  const seen = new Set<string>();
  const pattern = options.pattern ?? CODE;
  const fallback = options.fallback ?? 'none';
  return (value) => {
    if (value === undefined || value === '') return fallback;
    if (seen.has(value)) return value;
    if (!pattern.test(value) || seen.size >= max) return OTHER;
    seen.add(value);
    return value;
  };
}
