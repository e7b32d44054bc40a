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
}

export interface TokenSets {
  tokens: readonly string[]
  readTokens: readonly string[]
}

const digest = (token: string) => createHash('sha256').update(token).digest()

/** Matches `Bearer <token>`; the scheme is case-insensitive (RFC 9110), the token is not. */
const bearerPattern = /^bearer +([\x21-\x7e]+) *$/i

function anyEqual(presented: Buffer, allowed: readonly Buffer[]): boolean {
  let found = false
  for (const candidate of allowed) found = timingSafeEqual(presented, candidate) || found
  return found
}

/** undefined when no token is configured: the server then listens on loopback only. */
export type Authenticate = (request: FastifyRequest) => Promise<void>

export function authenticator(sets: TokenSets): Authenticate | undefined {
  if (sets.tokens.length === 0 && sets.readTokens.length === 0) return undefined
  const writeDigests = sets.tokens.map(digest)
  const readDigests = sets.readTokens.map(digest)
  return async function authenticate(request: FastifyRequest) {
    const access = request.routeOptions.config.access
    if (access === undefined) return
    const match = bearerPattern.exec(request.headers.authorization ?? '')
    const presented = digest(match?.[1] ?? '')
    const canWrite = anyEqual(presented, writeDigests)
    const canRead = anyEqual(presented, readDigests) || canWrite
    if (!canRead) throw new ApiError('ACCMAN_UNAUTHORIZED', 'a valid bearer token is required: Authorization: Bearer <token>')
    if (access === 'write' && !canWrite) throw new ApiError('ACCMAN_FORBIDDEN', 'this token may read but not mod')
  }
}
