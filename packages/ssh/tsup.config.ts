import { sockTsup } from '../../tsup.shared';

export default sockTsup();
