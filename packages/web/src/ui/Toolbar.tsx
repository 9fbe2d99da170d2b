import { type ReactNode, useId } from 'react';

/** One labelled control of a list's filter bar; `children` gets the id its control must carry. */
export function ToolbarField({
  label,
  wide = false,
  children,
}: {
  label: string;
  /** The search box: takes the room left over. */
  wide?: boolean;
  children: (id: string) => ReactNode;
}) {
  const id = useId();
  return (
    <div className={wide ? 'toolbar-field toolbar-search' : 'toolbar-field'}>
      <label htmlFor={id} className="field-label field-label-small">
        {label}
      </label>
      {children(id)}
    </div>
  );
}

/** What a filtered list says when nothing matches: `what` ("No secrets match these filters."), and a way back. */
export function NoMatches({ what, onClear }: { what: string; onClear: () => void }) {
  return (
    <div className="empty-inline" role="status">
      {what}{' '}
      <button type="button" className="button button-small" onClick={onClear}>
        Clear filters
      </button>
    </div>
  );
}
