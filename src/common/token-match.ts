import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Shared-secret tokens compared in constant time: each side is reduced to its SHA-256 digest (equal lengths
 * whatever the input), and every pair is compared, so timing reveals neither which token matched nor whether
 * an early one did.
 */
export class TokenSet {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    this.digests = tokens.map(digest);
  }

  /** Number of tokens accepted. */
  get size(): number {
    return this.digests.length;
  }

  /** True when any candidate equals any accepted token. */
  matchesAny(candidates: readonly string[]): boolean {
    let ok = false;
    for (const c of candidates) {
      const given = digest(c);
      for (const d of this.digests) ok = timingSafeEqual(d, given) || ok;
    }
    return ok;
  }
}

/** The token of an `Authorization: Bearer <token>` header value, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
