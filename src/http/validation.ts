// zod at the edge: Fastify's validator compiler for zod schemas, turning a rejection into one
// ApiError with a stable code and a message that names the parameter (never its value).
import type { FastifySchemaCompiler, FastifyTypeProvider } from 'fastify'
import { z } from 'zod'
import { ApiError } from './errors.js'
import { isMalformed } from './query.js'
import { parameterRules } from './schemas.js'

export interface ZodTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown
  serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown
}

export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  const names = schema instanceof z.ZodObject ? Object.keys(schema.shape) : []
  return (data: unknown) => {
    const result = schema.safeParse(data)
    if (result.success) return { value: result.data }
    return { error: rejectionOf(result.error, data, names, httpPart ?? 'request') }
  }
}

/**
 * One error for a rejected request part, whatever else is wrong with it: unknown parameters
 * first, then repeated ones, then the first named parameter (in schema order) that is missing
 * or malformed (its percent-encoding first). Unknown names are not echoed: a credential pasted as a name must not come back.
 */
function rejectionOf(error: z.ZodError, data: unknown, names: string[], part: string): ApiError {
  const values = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>
  const noun = part === 'headers' ? 'header' : 'parameter'
  if (error.issues.some((issue) => issue.code === 'unrecognized_keys')) {
    return new ApiError('ACCMAN_INVALID_QUERY', `unknown query parameter; this endpoint takes ${names.join(', ')}`)
  }
  const repeated = names.find((name) => Array.isArray(values[name]))
  if (repeated !== undefined) return new ApiError('ACCMAN_INVALID_QUERY', `${noun} ${repeated} is repeated`)
  const rejected = new Set(error.issues.map((issue) => String(issue.path[0])))
  const name = names.find((candidate) => rejected.has(candidate))
  if (name === undefined) return new ApiError('ACCMAN_INVALID_QUERY', `invalid ${part}`)
  if (values[name] === undefined) return new ApiError('ACCMAN_INVALID_QUERY', `missing ${noun} ${name}`)
  // A malformed credential keeps its own code, whatever is wrong with it.
  if (isMalformed(values[name]) && parameterRules[name]?.code !== 'ACCMAN_INVALID_CRED') {
    return new ApiError('ACCMAN_INVALID_QUERY', `${noun} ${name} is not valid percent-encoded UTF-8`)
  }
  const rule = parameterRules[name]
  return rule === undefined
    ? new ApiError('ACCMAN_INVALID_QUERY', `invalid ${noun} ${name}`)
    : new ApiError(rule.code, rule.message)
}
