// Bearer tokens for the data endpoints. Every presented token is hashed and compared with every
// configured one in constant time, so neither the timing nor the answer tells how close a guess
// was; a refusal says nothing about the account either, since it comes before the query is read.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { ApiError } from './errors.js'

export type Access = 'read' | 'write'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What a route needs of the bearer token, when tokens are configured. */
    access?: Access
  }
  interface FastifyRequest {
    /** The name of the named token the request came with (ACCMAN_TOKENS=name:token); entries it writes carry it. */
    actor?: string | undefined
  }
}

export interface TokenSets {
  tokens: readonly string[]
  readTokens: readonly string[]
  /** Names of `tokens`, same order; undefined where a token has none. */
  tokenNames?: readonly (string | undefined)[] | undefined
  readTokenNames?: readonly (string | undefined)[] | undefined
}

const digest = (token: string) => createHash('sha256').update(token).digest()

/** Matches `Bearer <token>`; the scheme is case-insensitive (RFC 9110), the token is not. */
const bearerPattern = /^bearer +([\x21-\x7e]+) *$/i

function anyEqual(presented: Buffer, allowed: readonly Buffer[]): boolean {
  return matchIndex(presented, allowed) >= 0
}

/** The index of the matching digest, or -1; every candidate is compared, whichever matches. */
function matchIndex(presented: Buffer, allowed: readonly Buffer[]): number {
  let found = -1
  for (const [index, candidate] of allowed.entries()) if (timingSafeEqual(presented, candidate) && found < 0) found = index
  return found
}

/** The name of the token an Authorization header presents, when it is a named one. */
export type ActorOf = (authorization: string | undefined) => string | undefined

export function actorFinder(sets: TokenSets): ActorOf {
  const named = [
    ...sets.tokens.map((token, index) => ({ token, name: sets.tokenNames?.[index] })),
    ...sets.readTokens.map((token, index) => ({ token, name: sets.readTokenNames?.[index] })),
  ]
  if (named.every((entry) => entry.name === undefined)) return () => undefined
  const digests = named.map((entry) => digest(entry.token))
  return (authorization) => {
    const match = bearerPattern.exec(authorization ?? '')
    const index = matchIndex(digest(match?.[1] ?? ''), digests)
    return index < 0 ? undefined : named[index]?.name
  }
}

/** What a request may do: `open` when no token is configured, else what its token allows. */
export type Scope = 'open' | 'read' | 'write'

/** The scope of an Authorization header; undefined when tokens are configured and it has none valid. */
export type ScopeOf = (authorization: string | undefined) => Scope | undefined

export function scoper(sets: TokenSets): ScopeOf {
  if (sets.tokens.length === 0 && sets.readTokens.length === 0) return () => 'open'
  const writeDigests = sets.tokens.map(digest)
  const readDigests = sets.readTokens.map(digest)
  return (authorization) => {
    const match = bearerPattern.exec(authorization ?? '')
    const presented = digest(match?.[1] ?? '')
    // Both sets are compared every time, so the timing does not tell which one matched.
    const canWrite = anyEqual(presented, writeDigests)
    const canRead = anyEqual(presented, readDigests)
    if (canWrite) return 'write'
    return canRead ? 'read' : undefined
  }
}

/** undefined when no token is configured: the server then listens on loopback only. */
export type Authenticate = (request: FastifyRequest) => Promise<void>

export function authenticator(sets: TokenSets): Authenticate | undefined {
  if (sets.tokens.length === 0 && sets.readTokens.length === 0) return undefined
  const scopeOf = scoper(sets)
  const actorOf = actorFinder(sets)
  return async function authenticate(request: FastifyRequest) {
    const access = request.routeOptions.config.access
    if (access === undefined) return
    const scope = scopeOf(request.headers.authorization)
    if (scope === undefined) throw new ApiError('ACCMAN_UNAUTHORIZED', 'a valid bearer token is required: Authorization: Bearer <token>')
    if (access === 'write' && scope !== 'write') throw new ApiError('ACCMAN_FORBIDDEN', 'this token may read but not write')
    const actor = actorOf(request.headers.authorization)
    if (actor !== undefined) request.actor = actor
  }
}
