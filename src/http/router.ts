interface Route<H> {
  method: string;
  segments: string[];
  handler: H;
}

export type RouteMatch<H> = { handler: H; params: Record<string, string> } | { allowed: string[] } | undefined;

/** Method + path routing with `:name` segments, shared by the admin API and the HTTP API. */
export class Router<H> {
  private readonly routes: Route<H>[] = [];

  add(method: string, pattern: string, handler: H): void {
    this.routes.push({ method, segments: pattern.split('/').filter(Boolean), handler });
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
      const params = matchSegments(route.segments, parts);
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
