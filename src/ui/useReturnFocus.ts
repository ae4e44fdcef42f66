/**
 * Gives focus back to a control that comes back when `open` turns false: a confirmation answered
 * with Keep, an edit box cancelled. The focused control went away with what closed, and the
 * browser would drop focus to the start of the page. Call `arm()` before closing; once `open` is
 * false again the element in `ref` (the control that opened it) takes focus. Closing without
 * `arm()` (the action went ahead and focus goes elsewhere) moves nothing.
 */
import { useCallback, useEffect, useRef, type RefObject } from 'react';

export function useReturnFocus<T extends HTMLElement>(open: boolean): [RefObject<T | null>, () => void] {
  const ref = useRef<T>(null);
  const armed = useRef(false);
  useEffect(() => {
    if (open || !armed.current) return;
    armed.current = false;
    ref.current?.focus();
  }, [open]);
  const arm = useCallback(() => {
    armed.current = true;
  }, []);
  return [ref, arm];
}
