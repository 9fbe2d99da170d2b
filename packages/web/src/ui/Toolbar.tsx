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
