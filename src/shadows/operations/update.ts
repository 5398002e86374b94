import { applyUpdate, parseUpdateRequest, type UpdateRequest, type UpdateResult } from '../document.js';
import { checkAddress, type OperationContext, type ShadowAddress } from './context.js';

/**
 * UpdateThingShadow: validate the whole request first, then read, merge and write in one
 * group-commit write, so the result exists only once it is on disk.
 */
export function updateShadow(address: ShadowAddress, body: unknown, context: OperationContext): Promise<{ result: UpdateResult; published: Promise<void> }> {
  checkAddress(address, context.limits);
  const request = parseUpdateRequest(body, context.limits);
  // Everything that may refuse the update runs before its one upsert. Published from a callback on
  // the commit itself: however many steps each caller awaits after, versions go out in order.
  return context.commit.run(() => mergeAndStore(address, request, context), { singleStatement: true })
    .then((result) => ({ result, published: context.announce.updated(address, result) }));
}

function mergeAndStore(address: ShadowAddress, request: UpdateRequest, context: OperationContext): UpdateResult {
  const previous = context.shadows.read(address.thing, address.name);
  const result = applyUpdate(previous, request, context.now(), context.limits);
  context.shadows.write(address.thing, address.name, result.stored);
  return result;
}
