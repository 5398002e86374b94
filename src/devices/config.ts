import { z } from 'zod/v3';

/** `devices.*`: serial devices and the profiles (firmware-configs/devices) they use. */
export const devicesSchema = z.strictObject({});
