import { GpuStatus } from './GpuStatus';

export function App() {
  return (
    <main>
      <h1>Phi-3 WebGPU Chat</h1>
      <p>Chat with Microsoft&apos;s Phi-3 Mini entirely in this tab, on your GPU. Nothing leaves your machine.</p>
      <GpuStatus />
    </main>
  );
}
