import { createHash, timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, Inject, Injectable, UnauthorizedException } from '@nestjs/common';

/** Injection token: the accepted bearer tokens (from CHATBRIDGE_API_TOKENS). */
export const API_TOKENS = Symbol('API_TOKENS');

/** Bearer-token check for `/v1/*` (SPEC §8): tokens from CHATBRIDGE_API_TOKENS, compared in constant time. */
@Injectable()
export class ApiAuthGuard implements CanActivate {
  private readonly digests: Buffer[];

  constructor(@Inject(API_TOKENS) tokens: string[]) {
    this.digests = tokens.map(digest);
  }

  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>();
    this.check(req.headers.authorization);
    return true;
  }

  /** Throws 401 unless `header` is `Bearer <a configured token>`. */
  check(header: string | undefined): void {
    if (!this.digests.length) throw new UnauthorizedException('no API tokens are configured: set CHATBRIDGE_API_TOKENS (comma-separated) to enable the API');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m) throw new UnauthorizedException('missing bearer token: send Authorization: Bearer <token>');
    const given = digest(m[1]);
    // Compare against every token so timing does not reveal which (or whether an early one) matched.
    let ok = false;
    for (const d of this.digests) ok = timingSafeEqual(d, given) || ok;
    if (!ok) throw new UnauthorizedException('invalid bearer token');
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
