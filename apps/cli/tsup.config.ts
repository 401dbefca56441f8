import { sockTsup } from '../../tsup.shared';

export default sockTsup({ format: ['esm'], dts: false, banner: { js: '#!/usr/bin/env node' } });
