import { useCombobox } from 'downshift';
import { type Ref, useState } from 'react';

export interface CredentialOption {
  id: string;
  name: string;
  /** The type's display name, the kind's group and the creator, shown under the name. */
  detail: string;
}

/**
 * The credential picker once a node type has many credentials: a combobox (downshift, WAI-ARIA 1.2) that
 * searches names, types and creators as one types. Choosing sets the form's `secretId`; "Clear" empties it.
 */
export function CredentialCombobox({
  id,
  labelId,
  describedBy,
  invalid,
  options,
  value,
  onChange,
  onBlur,
  inputRef,
}: {
  id: string;
  labelId: string;
  describedBy: string;
  invalid: boolean;
  options: CredentialOption[];
  value: string;
  onChange: (id: string) => void;
  onBlur: () => void;
  inputRef: Ref<HTMLInputElement>;
}) {
  const selected = options.find((option) => option.id === value) ?? null;
  const [query, setQuery] = useState('');
  const words = query.trim().toLowerCase().split(/\s+/).filter(Boolean);
  // While the box shows the chosen credential's name, every option is offered; typing narrows the list.
  const searching = words.length > 0 && query !== selected?.name;
  const items = searching
    ? options.filter((option) => {
        const text = `${option.name} ${option.detail}`.toLowerCase();
        return words.every((word) => text.includes(word));
      })
    : options;
  const combobox = useCombobox<CredentialOption>({
    items,
    inputId: id,
    labelId,
    itemToString: (item) => item?.name ?? '',
    selectedItem: selected,
    onSelectedItemChange: ({ selectedItem }) => onChange(selectedItem?.id ?? ''),
    onInputValueChange: ({ inputValue }) => setQuery(inputValue ?? ''),
  });
  return (
    <div className="combobox">
      <div className="combobox-control">
        <input
          className="input"
          placeholder="Search credentials…"
          {...combobox.getInputProps({
            ref: inputRef,
            onBlur,
            'aria-describedby': describedBy,
            'aria-invalid': invalid || undefined,
          })}
        />
        {selected && (
          <button
            type="button"
            className="button button-small"
            onClick={() => combobox.selectItem(null)}
            aria-label="Clear the credential"
          >
            Clear
          </button>
        )}
      </div>
      {searching && items.length === 0 && (
        <p className="combobox-empty" role="status">
          No credential matches “{query.trim()}”.
        </p>
      )}
      <ul
        className="combobox-menu"
        {...combobox.getMenuProps()}
        hidden={!combobox.isOpen || items.length === 0}
      >
        {combobox.isOpen &&
          items.map((item, index) => (
            <li
              key={item.id}
              className="combobox-option"
              data-highlighted={combobox.highlightedIndex === index || undefined}
              {...combobox.getItemProps({ item, index })}
            >
              <span className="combobox-option-name">{item.name}</span>
              <span className="cell-sub">{item.detail}</span>
            </li>
          ))}
      </ul>
    </div>
  );
}
