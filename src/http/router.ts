interface Route<H> {
  method: string;
  segments: string[];
  /** A last `:name*` segment: it takes the rest of the path, slashes and empty levels included. */
  rest: string | undefined;
  handler: H;
}

export type RouteMatch<H> = { handler: H; params: Record<string, string> } | { allowed: string[] } | undefined;

/**
 * Method + path routing with `:name` segments, shared by the admin API and the HTTP API. A last
 * `:name*` segment matches the rest of the path, as AWS's greedy labels (`{Key+}`) do: a topic sent
 * as `/topics/sensors/temp` rather than `/topics/sensors%2Ftemp`.
 */
export class Router<H> {
  private readonly routes: Route<H>[] = [];

  add(method: string, pattern: string, handler: H): void {
    const segments = pattern.split('/').filter(Boolean);
    const last = segments.at(-1);
    const rest = last?.startsWith(':') && last.endsWith('*') ? last.slice(1, -1) : undefined;
    this.routes.push({ method, segments: rest === undefined ? segments : segments.slice(0, -1), rest, handler });
  }

  /** The route for a request, or the methods the path allows when only the method is wrong. */
  match(method: string, path: string): RouteMatch<H> {
    let parts = path.split('/').filter(Boolean);
    if (path.includes('%')) {
      try {
        parts = parts.map(decodeURIComponent);
      } catch {
        return undefined;
      }
    }
    const allowed: string[] = [];
    for (const route of this.routes) {
      const params = route.rest === undefined ? matchSegments(route.segments, parts) : matchRest(route.segments, route.rest, path, parts);
      if (!params) continue;
      if (route.method === method) return { handler: route.handler, params };
      allowed.push(route.method);
    }
    return allowed.length ? { allowed } : undefined;
  }
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  // Literal segments first: most routes are ruled out without a params object.
  for (let i = 0; i < pattern.length; i++) if (pattern[i][0] !== ':' && pattern[i] !== parts[i]) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) if (pattern[i][0] === ':') params[pattern[i].slice(1)] = parts[i];
  return params;
}

/** The leading segments as matchSegments matches them, then `rest` from the raw path after them: `a//b` stays `a//b`. */
function matchRest(pattern: string[], rest: string, path: string, parts: string[]): Record<string, string> | undefined {
  if (parts.length <= pattern.length) return undefined;
  const params = matchSegments(pattern, parts.slice(0, pattern.length));
  if (!params) return undefined;
  // '/topics/a//b' splits as ['', 'topics', 'a', '', 'b']: the leading segments are non-empty, so they are 1..n
  const raw = path.split('/');
  if (raw.slice(1, pattern.length + 1).some((segment) => segment === '')) return undefined;
  try {
    params[rest] = decodeURIComponent(raw.slice(pattern.length + 1).join('/'));
  } catch {
    return undefined;
  }
  return params;
}
