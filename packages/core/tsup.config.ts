import { sockTsup } from '../../tsup.shared';

export default sockTsup({
  entry: {
    index: 'src/index.ts',
    testing: 'src/testing/index.ts',
  },
});
