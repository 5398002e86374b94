import type { AdminRouter } from '../admin/router.js';
import type { AccessKeys } from './access-keys.js';

/** `/v1/s3/keys` for `outpost s3 keys`. */
export function registerAccessKeyAdminRoutes(_admin: AdminRouter, _keys: AccessKeys): void {}
