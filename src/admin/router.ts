import { Router } from '../http/router.js';

/** A request to the admin API, already parsed: path parameters, query and JSON body. */
export interface AdminRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
}

export interface AdminResponse {
  status?: number;
  body?: unknown;
}

export type AdminHandler = (request: AdminRequest) => AdminResponse | Promise<AdminResponse>;

/** Thrown by a handler to refuse a request with a status and a one-line reason. */
export class AdminError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'AdminError';
  }
}

/** The admin API's routing table; services add their routes (`/v1/things/:name`) at construction. */
export class AdminRouter extends Router<AdminHandler> {}

/** The request body as a JSON object, else 400. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AdminError(400, 'expected a JSON object body');
  return body as Record<string, unknown>;
}

/** The body of a request whose fields are all optional: `{}` when there is none, else as objectBody. */
export function optionalObjectBody(body: unknown): Record<string, unknown> {
  return body === undefined ? {} : objectBody(body);
}

/** A string field of the body, undefined when absent, else 400. */
export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new AdminError(400, `expected "${key}" to be a string`);
  return value;
}
