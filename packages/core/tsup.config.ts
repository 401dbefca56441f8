import { sockTsup } from '../../tsup.shared';

export default sockTsup({
  entry: {
    index: 'src/index.ts',
    testing: 'src/testing/index.ts',
  },
  // `@sock/core/testing` imports core by name: kept external, it resolves to this package's own main
  // entry (a self-reference) rather than a second bundled copy.
  external: ['@sock/core'],
});
