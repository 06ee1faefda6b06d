// The app's root layout: one page, no external fonts or scripts.
import type { ReactNode } from "react";

export const metadata = { title: "Verify your identity", description: "Compare your ID document's photo with a selfie." };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: "system-ui, sans-serif", margin: 0, background: "#f4f5f7", color: "#1d2330" }}>{children}</body>
    </html>
  );
}
