// The query string parser. It splits and decodes as fast-querystring (Fastify's default) does, with
// one difference: a value whose percent-encoding is malformed (`%zz`, bytes that are not UTF-8, an
// encoded lone surrogate) is not kept as raw text but becomes `malformedValue`, which no schema
// accepts, so the request is refused naming the parameter and nothing is written.

/** Stands for a value that could not be percent-decoded. */
export const malformedValue: unique symbol = Symbol('malformed percent-encoding')

export type QueryValue = string | typeof malformedValue
export type Query = Record<string, QueryValue | QueryValue[]>

export function isMalformed(value: unknown): boolean {
  return value === malformedValue || (Array.isArray(value) && value.includes(malformedValue))
}

/** `+` is a space; undefined when the percent-encoding is malformed. */
function decodeComponent(text: string): string | undefined {
  const spaced = text.includes('+') ? text.replaceAll('+', ' ') : text
  if (!spaced.includes('%')) return spaced
  try {
    return decodeURIComponent(spaced)
  } catch {
    return undefined
  }
}

export function parseQuery(text: string): Query {
  const query: Query = Object.create(null) as Query
  if (text === '') return query
  for (const pair of text.split('&')) {
    // `a&&b` has an empty pair, skipped; `=x` names the empty parameter, which no schema takes.
    if (pair === '') continue
    const equals = pair.indexOf('=')
    const rawName = equals === -1 ? pair : pair.slice(0, equals)
    // A malformed name stays as sent: it is unknown to every schema, and never echoed.
    const name = decodeComponent(rawName) ?? rawName
    const value = equals === -1 ? '' : (decodeComponent(pair.slice(equals + 1)) ?? malformedValue)
    const previous = query[name]
    if (previous === undefined) query[name] = value
    else if (Array.isArray(previous)) previous.push(value)
    else query[name] = [previous, value]
  }
  return query
}
