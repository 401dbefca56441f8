import { sockTsup } from '../../tsup.shared';

export default sockTsup({
  entry: {
    index: 'src/index.ts',
    prometheus: 'src/prometheus.ts',
    pino: 'src/pino.ts',
    otel: 'src/otel.ts',
    status: 'src/status.ts',
  },
});
