// The verification page: the ID document's photo, a selfie from the camera (or a file), the answer.
import { VerifyPage } from "./verify-page.js";

export default function Home() {
  return <VerifyPage />;
}
