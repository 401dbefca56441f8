import { sockTsup } from '../../tsup.shared';

export default sockTsup({ entry: ['src/tour.ts', 'src/serve.ts'], format: ['esm'], dts: false });
