import { type CanActivate, type ExecutionContext, HttpException, HttpStatus, Inject, Injectable, Optional, UnauthorizedException } from '@nestjs/common';
import { NO_API_TOKENS, rateLimitError } from './api-error';
import type { TokenRateLimiter } from './rate-limit';
import { bearerToken, TokenSet } from './token-match';

/** Injection token: the accepted bearer tokens (from CHATBRIDGE_API_TOKENS). */
export const API_TOKENS = Symbol('API_TOKENS');
/** Injection token: the per-token rate limiter shared with the socket.io gateway. */
export const API_RATE_LIMITER = Symbol('API_RATE_LIMITER');

/**
 * Bearer-token check for `/v1/*` (docs/api.md): tokens from CHATBRIDGE_API_TOKENS, compared in constant time; then the
 * token's rate limit (429 with `Retry-After`).
 */
@Injectable()
export class ApiAuthGuard implements CanActivate {
  private readonly tokens: TokenSet;

  constructor(
    @Inject(API_TOKENS) tokens: string[],
    @Optional() @Inject(API_RATE_LIMITER) private readonly limiter?: TokenRateLimiter,
  ) {
    this.tokens = new TokenSet(tokens);
  }

  canActivate(ctx: ExecutionContext): boolean {
    const http = ctx.switchToHttp();
    const req = http.getRequest<{ headers: Record<string, string | undefined> }>();
    const token = this.check(req.headers.authorization);
    const decision = this.limiter?.take(token);
    if (decision && !decision.ok) {
      const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      http.getResponse<{ setHeader(name: string, value: string): void }>().setHeader('Retry-After', String(seconds));
      throw new HttpException(rateLimitError(decision.retryAfterMs), HttpStatus.TOO_MANY_REQUESTS);
    }
    return true;
  }

  /** Returns the token when `header` is `Bearer <a configured token>`; throws 401 otherwise. */
  check(header: string | undefined): string {
    if (!this.tokens.size) throw new UnauthorizedException(NO_API_TOKENS);
    const token = bearerToken(header);
    if (token === undefined) throw new UnauthorizedException('missing bearer token: send Authorization: Bearer <token>');
    if (!this.tokens.matchesAny([token])) throw new UnauthorizedException('invalid bearer token');
    return token;
  }
}
