import { sockTsup } from '../../tsup.shared';

export default sockTsup({
  entry: {
    index: 'src/index.ts',
    testing: 'src/testing/index.ts',
    internal: 'src/internal.ts',
  },
  // `@sock/core/testing` imports core by name: kept external, it resolves to this package's own main
  // entry (a self-reference) rather than a second bundled copy.
  external: ['@sock/core'],
  // `@sock/core/internal` and the main entry share modules (errors, the clock): split into shared chunks,
  // there is one copy of each, so one SockError class.
  splitting: true,
});
