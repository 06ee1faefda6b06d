"""The whole pipeline on real photos with the real test pack: FaceVerifier.verify."""

from __future__ import annotations

import base64
import math
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from conftest import case, encode
from faceverify.compare import SIMILARITY_DECIMALS
from faceverify.faces import DETECTION_SIDE
from faceverify.images import decode_image
from faceverify.verifier import FACE_DETAIL
from faceverify_tools.inputs import data_uri, png_claiming_size

CARD_BACKS = ["0_id-esp.png", "53_id-d.jpg", "77_card-cmw.png", "100_id-che.jpg", "100_id-mac.jpg", "100_id-si.jpg", "100_id-usa.jpg"]


def test_two_photos_of_one_person_match(verifier):
    result = verifier.verify(case("single-face/obama.jpg"), case("single-face/obama2.jpg"))
    assert result.error_code is None
    assert result.match is True
    assert result.similarity >= result.threshold == verifier.default_threshold
    assert result.image1.face_count == 1 and result.image2.face_count == 1


def test_two_people_do_not_match(verifier):
    result = verifier.verify(case("single-face/obama.jpg"), case("single-face/biden.jpg"))
    assert result.error_code is None
    assert result.match is False
    assert result.similarity < result.threshold


def test_similarity_is_a_rounded_cosine_and_symmetric(verifier):
    forward = verifier.verify(case("single-face/obama.jpg"), case("single-face/obama3.jpg"))
    backward = verifier.verify(case("single-face/obama3.jpg"), case("single-face/obama.jpg"))
    assert -1.0 <= forward.similarity <= 1.0 and round(forward.similarity, 4) == forward.similarity
    assert forward.similarity == pytest.approx(backward.similarity, abs=1e-4)


def similarity_to(verifier, found, other) -> float:
    first, second = verifier.embed([verifier.align(found), verifier.align(other)])
    return float(first @ second)


@pytest.mark.parametrize("name", [f"hopper_orientation_{n}.{ext}" for n in range(2, 9) for ext in ("jpg", "webp")])
def test_exif_rotated_copy_is_the_upright_photo(verifier, name):
    # Once its EXIF orientation is applied, the copy is the same picture as the upright photo: the
    # same embedding, and as a selfie it is refused as a copy (a wrongly turned or mirrored image
    # would be neither).
    upright, turned = verifier.find_face(case("exif/hopper.jpg")), verifier.find_face(case(f"exif/{name}"))
    assert similarity_to(verifier, upright, turned) > 0.9
    result = verifier.verify(case("exif/hopper.jpg"), case(f"exif/{name}"))
    assert (result.error_code, result.match) == ("image2_same_photo", False), result


def test_box_is_in_original_pixels_of_a_scaled_down_photo(verifier):
    photo = Image.open(case("single-face/obama.jpg"))
    big = photo.resize((photo.width * 3, photo.height * 3))
    small_result = verifier.verify(case("single-face/obama.jpg"), case("single-face/obama2.jpg"))
    big_result = verifier.verify(encode(big, "JPEG", quality=90), case("single-face/obama2.jpg"))
    for small, large in zip(small_result.image1.box, big_result.image1.box):
        assert large == pytest.approx(small * 3, abs=12)
    assert big_result.match is True


def test_passport_with_ghost_portrait_compares_the_main_portrait(verifier):
    result = verifier.verify(case("id-documents/100_pass-cze.jpg"), case("id-documents/100_pass-cze.jpg"))
    # The main portrait fills 31% of the page's height, so the coarse pass alone finds it and the
    # small ghost on the right is never searched for (faces.LARGE_FACE); either way it is not compared.
    assert result.image1.face_count >= 1
    x1, y1, x2, y2 = result.image1.box
    assert x2 < 300, "the main portrait is on the left; the ghost is on the right"
    assert (x2 - x1) * (y2 - y1) > 5000


@pytest.mark.parametrize("name", ["100_pass-cze2.jpg", "100_pass-fin.png", "24_pass-egy.jpg"])
def test_other_ghost_specimens_choose_the_larger_portrait(verifier, name):
    found = verifier.find_face(case(f"id-documents/{name}").read_bytes())
    largest = max(found.faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    assert found.face == largest


def test_crop_of_the_document_portrait_embeds_like_the_full_document(verifier):
    # The crop is the same photo, so as a selfie it is refused (test_kyc_checks.py); its face still
    # embeds as the document's does, so a crop works as the reference.
    card = Image.open(case("id-documents/100_pass-cze.jpg"))
    whole = verifier.find_face(case("id-documents/100_pass-cze.jpg"))
    x1, y1, x2, y2 = whole.report().box
    crop = verifier.find_face(encode(card.crop((int(x1) - 30, int(y1) - 30, int(x2) + 30, int(y2) + 30)), "PNG"))
    assert similarity_to(verifier, whole, crop) >= 0.9


def test_large_jpeg_is_searched_at_reduced_size_with_the_same_answer(verifier):
    # obama-1080p.jpg is 1920x1080: decoded at 960x540 for detection, where its face is 166 pixels
    # tall, enough detail for the recognizer (FACE_DETAIL), so it is not decoded again.
    data = case("single-face/obama-1080p.jpg").read_bytes()
    found = verifier.find_face(data)
    assert found.image.pixels.shape[:2] == (540, 960)
    plain = verifier.locate_face(decode_image(data))
    assert plain.image.pixels.shape[:2] == (1080, 1920)
    assert found.report().box == pytest.approx(plain.report().box, abs=10)
    other = verifier.find_face(case("single-face/obama.jpg"))
    assert similarity_to(verifier, found, other) == pytest.approx(similarity_to(verifier, plain, other), abs=0.03)


def test_small_face_in_a_large_jpeg_is_decoded_again_with_detail(verifier):
    # A 2000x1500 JPEG whose face is about 200 pixels tall: 100 at the 1000x750 detection decode,
    # under FACE_DETAIL * 112, so it is decoded again at full size before alignment.
    photo = Image.open(case("single-face/obama.jpg"))
    canvas = Image.new("RGB", (2000, 1500), (205, 200, 190))
    canvas.paste(photo.resize((photo.width * 6 // 10, photo.height * 6 // 10)), (700, 400))
    data = encode(canvas, "JPEG", quality=90)
    assert decode_image(data, min_side=DETECTION_SIDE).pixels.shape[:2] == (750, 1000)
    found = verifier.find_face(data)
    assert found.image.pixels.shape[:2] == (1500, 2000) and not found.image.reduced
    assert any(face is found.face for face in found.faces)
    assert found.face.height >= FACE_DETAIL * verifier.recognizer_size
    plain = verifier.locate_face(decode_image(data))
    assert found.report().box == pytest.approx(plain.report().box, abs=6)
    other = verifier.find_face(case("single-face/obama2.jpg"))
    assert similarity_to(verifier, found, other) == pytest.approx(similarity_to(verifier, plain, other), abs=0.03)
    assert verifier.verify(data, case("single-face/obama2.jpg")).match is True


@pytest.mark.parametrize("name", CARD_BACKS)
def test_card_backs_have_no_face(verifier, name):
    result = verifier.verify(case(f"id-documents/{name}"), case("single-face/obama.jpg"))
    assert (result.error_code, result.match, result.similarity) == ("image1_no_face", False, None)
    assert result.image1.face_count == 0


@pytest.mark.parametrize("name", ["dogs.jpg", "pacman.png", "tesseract-test1.jpg"])
def test_non_faces_give_no_face_on_the_selfie_side(verifier, name):
    result = verifier.verify(case("single-face/obama.jpg"), case(f"no-face/{name}"))
    assert (result.error_code, result.match) == ("image2_no_face", False)
    assert result.image1.face_count == 1, "the good image's findings are still reported"


def test_group_photo_compares_its_most_prominent_face(verifier):
    # Obama (larger, nearer the centre) and Biden side by side, and a third face further back.
    group = case("multi-face/obama_and_biden.jpg")
    with_obama = verifier.verify(case("single-face/obama.jpg"), group)
    assert with_obama.image2.face_count == 3 and with_obama.match is True, with_obama
    found = verifier.find_face(group)
    areas = sorted(((f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), i) for i, f in enumerate(found.faces))
    assert found.face is found.faces[areas[-1][1]], "the largest face is chosen"
    assert with_obama.image2.box == found.report().box
    # Biden is in the photo, so choosing the wrong face would change the answer.
    biden_box = found.faces[areas[-2][1]].box
    biden_crop = Image.open(group).crop(tuple(int(v) for v in (biden_box[0] - 80, biden_box[1] - 80, biden_box[2] + 80, biden_box[3] + 80)))
    assert verifier.verify(case("single-face/biden.jpg"), encode(biden_crop, "PNG")).match is True
    assert verifier.verify(case("single-face/biden.jpg"), group).match is False


TEXT = b"just some text, not an image\n"


@pytest.mark.parametrize(
    "image1,image2,code",
    [
        (None, "obama", "image1_missing"),
        ("obama", None, "image2_missing"),
        (b"", "obama", "image1_invalid"),
        ("obama", b"", "image2_invalid"),
        (TEXT, "obama", "image1_invalid"),
        ("obama", b"\xff\xd8\xff\xe0corrupt jpeg", "image2_invalid"),
        ("obama", "/etc/passwd", "image2_invalid"),
        (png_claiming_size(100_000, 100_000), "obama", "image1_too_large"),
        ("obama", png_claiming_size(100_000, 100_000), "image2_too_large"),
        ("tiny", "obama", "image1_too_small"),
        ("obama", "tiny", "image2_too_small"),
        ("dogs", "obama", "image1_no_face"),
        ("obama", "dogs", "image2_no_face"),
    ],
)
def test_every_image_error_code_from_a_real_input(verifier, image1, image2, code):
    named = {
        "obama": case("single-face/obama.jpg"),
        "dogs": case("no-face/dogs.jpg"),
        "tiny": encode(Image.open(case("single-face/obama_small.jpg")).resize((24, 18)), "PNG"),
    }
    result = verifier.verify(named.get(image1, image1), named.get(image2, image2))
    assert result.error_code == code
    assert result.match is False and result.similarity is None
    assert result.error.startswith(code.split("_")[0] + ": ")


def test_both_images_are_examined_and_image1s_problem_comes_first(verifier):
    # image1 without a face: its error is reported, and image2's face is reported too.
    result = verifier.verify(case("no-face/dogs.jpg"), case("single-face/obama2.jpg"))
    assert result.error_code == "image1_no_face" and result.image1.face_count == 0
    assert result.image2.face_count == 1 and len(result.image2.box) == 4
    # Both images bad: image1's problem is the one reported.
    both = verifier.verify(case("no-face/dogs.jpg"), TEXT)
    assert both.error_code == "image1_no_face" and both.match is False


def test_answers_are_the_same_when_predictions_overlap(verifier):
    # Two verifications at once share the helper threads; each must get its own pair's answer.
    pairs = [(case("single-face/obama.jpg"), case("single-face/obama2.jpg")),
             (case("single-face/obama-1080p.jpg"), case("single-face/biden.jpg"))] * 4
    alone = [verifier.verify(*pair).similarity for pair in pairs]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda pair: verifier.verify(*pair).similarity, pairs))
    assert together == alone and len(set(alone)) == 2


def test_data_uri_and_base64_inputs_give_the_same_answer_as_files(verifier):
    obama = case("single-face/obama.jpg")
    uri = data_uri(obama.read_bytes())
    bare = base64.b64encode(case("single-face/obama2.jpg").read_bytes()).decode()
    by_text = verifier.verify(uri, bare)
    by_file = verifier.verify(obama, case("single-face/obama2.jpg"))
    assert by_text == by_file


@pytest.mark.parametrize("threshold", [1.5, -0.1, float("nan"), float("inf"), "abc", "0.5", True])
def test_bad_thresholds_are_caller_errors(verifier, threshold):
    with pytest.raises(ValueError, match="threshold"):
        verifier.verify(case("single-face/obama.jpg"), case("single-face/obama2.jpg"), threshold)


def test_a_pair_matches_at_its_own_similarity_and_not_just_above_it(verifier):
    """The match decision on a real pair: true at a threshold equal to its (returned) similarity or
    just below, false just above, at the bounds as at any other threshold."""
    pair = (case("single-face/obama.jpg"), case("single-face/obama2.jpg"))
    similarity = verifier.verify(*pair).similarity
    assert 0.0 < similarity < 1.0
    step = 10 ** -SIMILARITY_DECIMALS  # the similarity's last decimal
    answers = {threshold: verifier.verify(*pair, threshold) for threshold in (0.0, similarity - step, similarity, similarity + step, 1.0)}
    assert {threshold: result.similarity for threshold, result in answers.items()} == dict.fromkeys(answers, similarity)
    assert {threshold: result.threshold for threshold, result in answers.items()} == {threshold: threshold for threshold in answers}
    assert [result.match for result in answers.values()] == [True, True, True, False, False]


def test_error_results_still_carry_the_threshold_and_finite_numbers(verifier):
    result = verifier.verify(case("single-face/obama.jpg"), case("no-face/dogs.jpg"), 0.42)
    assert result.threshold == 0.42
    for value in (result.threshold, result.image1.score, *result.image1.box):
        assert math.isfinite(value)


def test_command_line_prints_the_predictions_own_output(server):
    import json
    import subprocess
    import sys

    from conftest import REPO, TEST_PACK

    images = [case("single-face/obama.jpg"), case("multi-face/two_people.jpg")]
    run = subprocess.run([sys.executable, "-m", "faceverify", *map(str, images), "--weights", str(TEST_PACK)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    prediction = server.predict({"image1": data_uri(images[0].read_bytes()), "image2": data_uri(images[1].read_bytes())})
    assert printed == prediction.json()["output"]
    assert printed["image2_quality_issues"] == ["multiple_faces"] and printed["image1_face_count"] == 1
    assert printed["image1_eye_distance"] == round(printed["image1_eye_distance"], 1)
