import { type CanActivate, type ExecutionContext, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { bearerToken, TokenSet } from './token-match';

/** Injection token: the accepted bearer tokens (from CHATBRIDGE_API_TOKENS). */
export const API_TOKENS = Symbol('API_TOKENS');

/** Bearer-token check for `/v1/*` (SPEC §8): tokens from CHATBRIDGE_API_TOKENS, compared in constant time. */
@Injectable()
export class ApiAuthGuard implements CanActivate {
  private readonly tokens: TokenSet;

  constructor(@Inject(API_TOKENS) tokens: string[]) {
    this.tokens = new TokenSet(tokens);
  }

  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>();
    this.check(req.headers.authorization);
    return true;
  }

  /** Throws 401 unless `header` is `Bearer <a configured token>`. */
  check(header: string | undefined): void {
    if (!this.tokens.size) throw new UnauthorizedException('no API tokens are configured: set CHATBRIDGE_API_TOKENS (comma-separated) to enable the API');
    const token = bearerToken(header);
    if (token === undefined) throw new UnauthorizedException('missing bearer token: send Authorization: Bearer <token>');
    if (!this.tokens.matchesAny([token])) throw new UnauthorizedException('invalid bearer token');
  }
}
