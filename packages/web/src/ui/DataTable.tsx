import { type ReactNode, useLayoutEffect, useRef } from 'react';

/**
 * The one list table of the settings pages: a caption for screen readers, a header row of column
 * names and, when rows carry buttons, a last column whose header is read as "Actions".
 */
export function DataTable({
  caption,
  columns,
  actions = false,
  children,
}: {
  caption: string;
  columns: readonly string[];
  actions?: boolean;
  children: ReactNode;
}) {
  const table = useRef<HTMLTableElement>(null);
  // In a narrow box the rows become cards (styles.css): each cell carries its column's name to show there.
  useLayoutEffect(() => {
    for (const row of table.current?.tBodies[0]?.rows ?? [])
      for (const [index, cell] of [...row.cells].entries()) {
        const label = columns[index];
        if (label && cell.tagName === 'TD') cell.dataset.label = label;
      }
  });
  return (
    <div className="table-wrap">
      <table className="table" ref={table}>
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {columns.map((column) => (
              <th scope="col" key={column}>
                {column}
              </th>
            ))}
            {actions && (
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** "Load more" under a paged list: the next page of a TanStack infinite query, once at a time. */
export function LoadMore({
  pages,
}: {
  pages: { hasNextPage: boolean; isFetchingNextPage: boolean; fetchNextPage: () => unknown };
}) {
  if (!pages.hasNextPage) return null;
  return (
    <div className="load-more">
      <button
        type="button"
        className="button"
        onClick={() => pages.fetchNextPage()}
        disabled={pages.isFetchingNextPage}
      >
        {pages.isFetchingNextPage ? 'Loading…' : 'Load more'}
      </button>
    </div>
  );
}
