import { AdminError, type AdminRouter } from '../admin/router.js';
import { errors, ShadowError } from './errors.js';
import { CLASSIC } from './store.js';
import { validateThingName } from './document.js';
import type { OperationContext, ShadowAddress } from './operations/context.js';
import { getShadow } from './operations/get.js';
import { updateShadow } from './operations/update.js';
import { deleteShadow } from './operations/delete.js';

/** Shadows in one page of `GET /v1/shadows`. */
const LIST_PAGE = 1000;

/** `/v1/shadows` on the admin API, for `outpost shadow`: the same operations as MQTT and HTTP. */
export function registerShadowAdminRoutes(router: AdminRouter, context: OperationContext): void {
  const address = (params: Record<string, string>, query: URLSearchParams): ShadowAddress => {
    const name = query.get('name');
    // as on the HTTP API: `?name=` names no shadow, not the classic one (AWS: 1-64 characters)
    if (name === '') throw errors.invalidShadowName();
    return { thing: params.thing, name: name ?? CLASSIC };
  };

  // `?thing=` named a thing "" and listed every shadow; a thing's name is checked as the shadow routes check it.
  // Every shadow comes in pages of LIST_PAGE: `next` (THING/NAME, NAME empty for the classic) is the `?after=` of the next.
  router.add('GET', '/v1/shadows', ({ query }) => asAdminError(async () => {
    const thing = query.get('thing');
    if (thing !== null) {
      validateThingName(thing, context.limits);
      return { shadows: context.shadows.summaries(thing) };
    }
    const [afterThing = '', afterName = ''] = (query.get('after') ?? '').split('/');
    const shadows = context.shadows.summaryPage({ thing: afterThing, name: afterName }, LIST_PAGE);
    const last = shadows.at(-1);
    return { shadows, ...(shadows.length === LIST_PAGE && last ? { next: `${last.thing}/${last.name ?? ''}` } : {}) };
  }));

  router.add('GET', '/v1/shadows/:thing', ({ params, query }) => asAdminError(() => getShadow(address(params, query), {}, context)));

  router.add('POST', '/v1/shadows/:thing', ({ params, query, body }) => asAdminError(async () => {
    const target = address(params, query);
    const { result, published } = await updateShadow(target, body, context);
    await published;
    // The admin router writes objects: the CLI shows the accepted document, not its text.
    return JSON.parse(result.accepted);
  }));

  router.add('DELETE', '/v1/shadows/:thing', ({ params, query }) => asAdminError(async () => {
    const target = address(params, query);
    const { document, published } = await deleteShadow(target, {}, context);
    await published;
    return document;
  }));
}

async function asAdminError(action: () => Promise<unknown>): Promise<{ body: unknown }> {
  try {
    return { body: await action() };
  } catch (error) {
    if (error instanceof ShadowError) throw new AdminError(error.code, error.message);
    throw error;
  }
}
