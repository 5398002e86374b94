import { deleteDocument, parseTokenRequest, type JsonObject } from '../document.js';
import { errors } from '../errors.js';
import { checkAddress, displayName, type OperationContext, type ShadowAddress } from './context.js';

/** DeleteThingShadow: a soft delete that keeps the version for a re-created shadow to continue. */
export function deleteShadow(address: ShadowAddress, body: unknown, context: OperationContext): Promise<JsonObject> {
  checkAddress(address, context.limits);
  const request = parseTokenRequest(body, context.limits);
  return context.commit.run(() => softDelete(address, request.clientToken, context));
}

function softDelete(address: ShadowAddress, clientToken: string | undefined, context: OperationContext): JsonObject {
  const record = context.shadows.read(address.thing, address.name);
  if (!record || record.deletedAt !== undefined) throw errors.noSuchShadow(displayName(address));
  const now = context.now();
  context.shadows.softDelete(address.thing, address.name, now);
  return deleteDocument(record, now, clientToken);
}
