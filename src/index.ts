export { EDGETL_VERSION } from './version.js';
