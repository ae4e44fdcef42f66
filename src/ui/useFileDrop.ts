/**
 * An element that takes dropped files: spread the returned props on it. While files are dragged
 * over it, it carries `data-drop="over"` (app.css lights it up); a drop there stops at it (the
 * page refuses drops that reach the window, App.tsx) and hands its DataTransfer to `onDrop`
 * while the event runs, so folder handles can still be taken. Drags of text pass through.
 * `enabled: false` shows a refusing cursor and ignores the drop (a copy is already running).
 */
import { useState, type DragEvent } from 'react';

const withFiles = (e: DragEvent) => e.dataTransfer.types.includes('Files');

export function useFileDrop(onDrop: (data: DataTransfer) => void, enabled = true) {
  const [over, setOver] = useState(false);
  return {
    'data-drop': over ? 'over' : undefined,
    onDragEnter: (e: DragEvent) => {
      if (withFiles(e)) setOver(true);
    },
    onDragOver: (e: DragEvent) => {
      if (!withFiles(e)) return;
      e.preventDefault();
      e.stopPropagation();
      e.dataTransfer.dropEffect = enabled ? 'copy' : 'none';
    },
    onDragLeave: (e: DragEvent) => {
      if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setOver(false);
    },
    onDrop: (e: DragEvent) => {
      if (!withFiles(e)) return;
      e.preventDefault();
      e.stopPropagation();
      setOver(false);
      if (enabled) onDrop(e.dataTransfer);
    },
  };
}
