/**
 * The open conversation's settings in a modal dialog: system prompt and sampling. Nothing is
 * applied until every field is valid; each bad field shows its message (which quotes the bad
 * value) next to it and is marked aria-invalid. "Reset to defaults" fills in the built-in
 * DEFAULT_SETTINGS; "Also use these for new chats" makes the saved values where new
 * conversations start (unticked each time the dialog opens: ticking it is always a choice).
 */
import { useEffect, useRef, useState } from 'react';
import { useAppStore } from '../store';
import { draftFrom, type SettingsDraft } from '../store/settingsSlice';
import { DEFAULT_SETTINGS } from '../conversations/tree';
import { NUMERIC_KEYS, SETTING_LIMITS, type SettingsErrors } from '../conversations/settings';

function SettingsForm({ onClose }: { onClose: () => void }) {
  const active = useAppStore((s) => (s.activeId ? s.conversations[s.activeId]?.settings : undefined));
  const save = useAppStore((s) => s.saveSettings);
  const newChatSettings = useAppStore((s) => s.newChatSettings);
  // Phi-3 Mini's templates before June 2024 drop system messages; the tokenizer folds them instead.
  const foldedSystem = useAppStore((s) => s.model.loaded?.info.systemRole === 'first-user-message');
  const [ownNewChatSettings] = useState(() => useAppStore.getState().hasOwnNewChatSettings());
  // Without an open conversation, saving creates one: it would start from the new-chat settings.
  const [draft, setDraft] = useState<SettingsDraft>(() => draftFrom(active ?? newChatSettings()));
  const [forNewChats, setForNewChats] = useState(false);
  const [errors, setErrors] = useState<SettingsErrors>({});
  const set = (key: keyof SettingsDraft, value: string) => setDraft((d) => ({ ...d, [key]: value }));

  return (
    <form
      noValidate
      onSubmit={async (e) => {
        e.preventDefault();
        const r = await save(draft, { forNewChats });
        if (r.ok) onClose();
        else setErrors(r.errors);
      }}
    >
      <h2 id="settings-title">Conversation settings</h2>
      <p className="muted" id="context-policy">
        These apply to this conversation, and to new chats if you tick the box below. When it outgrows the model&apos;s context, the oldest turns are left out of
        the prompt (the system prompt and your newest message are always kept) and the answer says how many.
      </p>
      <label htmlFor="set-systemPrompt">System prompt</label>
      <textarea
        id="set-systemPrompt"
        rows={4}
        value={draft.systemPrompt}
        onChange={(e) => set('systemPrompt', e.target.value)}
        aria-invalid={errors.systemPrompt ? true : undefined}
        aria-describedby={[foldedSystem && 'note-systemPrompt', errors.systemPrompt && 'err-systemPrompt'].filter(Boolean).join(' ') || undefined}
      />
      {foldedSystem && (
        <small id="note-systemPrompt" className="field-note">
          This model&apos;s chat template has no system role, so the system prompt is put at the start of your first message.
        </small>
      )}
      {errors.systemPrompt && (
        <p id="err-systemPrompt" className="error">
          {errors.systemPrompt}
        </p>
      )}
      <div className="settings-grid">
        {NUMERIC_KEYS.map((key) => {
          const l = SETTING_LIMITS[key];
          return (
            <div key={key} className="field">
              <label htmlFor={`set-${key}`}>{l.label}</label>
              <input
                id={`set-${key}`}
                inputMode={l.integer ? 'numeric' : 'decimal'}
                value={draft[key]}
                onChange={(e) => set(key, e.target.value)}
                aria-invalid={errors[key] ? true : undefined}
                aria-describedby={`hint-${key}${errors[key] ? ` err-${key}` : ''}`}
              />
              <small id={`hint-${key}`}>
                {l.min}–{l.max}; {l.hint}
              </small>
              {errors[key] && (
                <p id={`err-${key}`} className="error">
                  {errors[key]}
                </p>
              )}
            </div>
          );
        })}
      </div>
      <label className="check">
        <input type="checkbox" checked={forNewChats} onChange={(e) => setForNewChats(e.target.checked)} aria-describedby="new-chat-note" />
        Also use these for new chats
      </label>
      <small id="new-chat-note">
        {ownNewChatSettings ? 'New chats now start from settings you saved for them.' : 'New chats now start from the defaults.'} Existing chats keep their own.
      </small>
      {errors.other && (
        <p className="error" role="alert">
          {errors.other}
        </p>
      )}
      {Object.keys(errors).length > 0 && (
        <p className="error" role="alert">
          Nothing was saved: fix the {Object.keys(errors).length === 1 ? 'field' : `${Object.keys(errors).length} fields`} marked above.
        </p>
      )}
      <div className="actions">
        <button type="submit" className="primary">
          Save
        </button>
        <button type="button" onClick={() => setDraft(draftFrom(DEFAULT_SETTINGS))}>
          Reset to defaults
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function SettingsPanel() {
  const open = useAppStore((s) => s.settingsOpen);
  const setOpen = useAppStore((s) => s.setSettingsOpen);
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} className="settings-dialog" aria-labelledby="settings-title" onClose={() => setOpen(false)}>
      {open && <SettingsForm onClose={() => setOpen(false)} />}
    </dialog>
  );
}
