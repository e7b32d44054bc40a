// A large amount, grouped, that may wrap only between its digit groups, never inside one.
import { Fragment } from 'preact'

export function GroupedAmount({ value }: { value: bigint }) {
  const parts = new Intl.NumberFormat(undefined, { useGrouping: true }).formatToParts(value)
  return (
    <>
      {parts.map((part, index) =>
        part.type === 'group' ? (
          <Fragment key={index}>
            {part.value}
            <wbr />
          </Fragment>
        ) : (
          part.value
        ),
      )}
    </>
  )
}
