/**
 * A minimal client of the billing REST API (CONTRACT.md section 3): bearer token (optional for public
 * routes), JSON bodies, errors in
 * the contract's `{"error": {...}}` shape. Network errors and 5xx answers are retried three times; a 429
 * (the API's rate limit) is waited out as its Retry-After says, as often as it comes (at most 30 s each).
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface ApiAnswer {
  status: number;
  body: unknown;
  /** The Date header of the answer. */
  date?: string;
}

export class ApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`${method} ${path}: HTTP ${status} ${describeError(body)}`);
  }
}

export class ApiClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string | null,
    private readonly timeoutMs = 15_000,
  ) {}

  /** POSTs `body`; returns the answer whatever its status (callers decide what 404 or 409 mean). */
  post(path: string, body: unknown): Promise<ApiAnswer> {
    return this.request('POST', path, body);
  }

  /** GETs `path`; returns the answer whatever its status. */
  get(path: string): Promise<ApiAnswer> {
    return this.request('GET', path);
  }

  private async request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiAnswer> {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(`${this.baseUrl}${path}`, {
          method,
          headers: {
            ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            accept: 'application/json',
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        const text = await response.text();
        const answer = { status: response.status, body: parseJson(text), date: response.headers.get('date') ?? undefined };
        if (response.status === 429) {
          const retryAfter = Number(response.headers.get('retry-after'));
          await sleep(Math.min(30, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : 1) * 1000);
          attempt--; // rate limiting is not a failure: it does not use up the retries
          continue;
        }
        if (response.status >= 500 && attempt < 3) {
          await sleep(500 * attempt);
          continue;
        }
        return answer;
      } catch (error) {
        if (attempt >= 3) throw new Error(`${method} ${this.baseUrl}${path}: ${networkReason(error)}`);
        await sleep(500 * attempt);
      }
    }
  }
}

/** `fetch failed` says nothing: the cause's code (ECONNREFUSED, ENOTFOUND) or message does. */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
}

/** `code: message` of a contract error body, or the raw body. */
export function describeError(body: unknown): string {
  const error = (body as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
  if (error) return `${error.code ?? ''}: ${error.message ?? ''}${error.details ? ` ${JSON.stringify(error.details)}` : ''}`;
  return typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body)?.slice(0, 200) ?? '';
}
