"""The client file: schema checks with key paths, YAML limits, the shipped example."""

from pathlib import Path

import pytest
import yaml
from support.client import client_yml
from support.site import SiteRepo

from operations.config import ConfigError, load_client


def _site(tmp_path: Path) -> SiteRepo:
    return SiteRepo.create(tmp_path / "site")


def _error(tmp_path: Path, doc: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_client(client_yml(tmp_path, doc))
    return str(info.value)


def test_defaults_match_the_layout(tmp_path):
    _site(tmp_path)
    client = load_client(client_yml(tmp_path, {"source": "site", "hosts": [{"name": "web1"}]}))
    assert client.source == (tmp_path / "site").resolve()
    assert client.docroot == "htdocs"
    assert client.shared_dirs == ("cache", "content", "storage")
    assert client.keep_releases == 5
    assert client.hosts[0].get("root") is None  # the SSH user's home


def test_unknown_key_names_file_path_and_suggestion(tmp_path):
    message = _error(tmp_path, {"source": ".", "keep_relases": 3, "hosts": [{"name": "a"}]})
    assert str(tmp_path / "client.yml") in message
    assert "unknown key 'keep_relases'" in message
    assert "did you mean 'keep_releases'" in message


def test_nested_unknown_key_has_key_path(tmp_path):
    message = _error(tmp_path, {"source": ".", "hosts": [{"name": "a", "prot": 22}]})
    assert "hosts[0]: unknown key 'prot' (did you mean " in message
    assert "'port'" in message.split("allowed keys")[0]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"source": ".", "hosts": []}, "hosts: [] should be non-empty"),
        ({"hosts": [{"name": "a"}]}, "missing required key 'source'"),
        (
            {"source": ".", "hosts": [{"name": "a", "port": "22"}]},
            "hosts[0].port: '22' is not of type",
        ),
        ({"source": ".", "keep_releases": 0, "hosts": [{"name": "a"}]}, "keep_releases: 0 is less"),
        ({"source": ".", "root": "/", "hosts": [{"name": "a"}]}, "root: '/' must be an absolute"),
        ({"source": ".", "root": "srv/x", "hosts": [{"name": "a"}]}, "root: 'srv/x' must be"),
        (
            {"source": ".", "shared_dirs": ["../x"], "hosts": [{"name": "a"}]},
            "shared_dirs[0]: '../x'",
        ),
        (
            {"source": ".", "shared_dirs": ["/etc"], "hosts": [{"name": "a"}]},
            "shared_dirs[0]: '/etc'",
        ),
        ({"source": ".", "shared_dirs": [""], "hosts": [{"name": "a"}]}, "shared_dirs[0]: ''"),
        ({"source": ".", "shared_dirs": ["htdocs"], "hosts": [{"name": "a"}]}, "is the docroot"),
        (
            {"source": ".", "shared_dirs": ["a", "a/b"], "hosts": [{"name": "a"}]},
            "inside the shared",
        ),
        ({"source": ".", "hosts": [{"name": "a"}, {"name": "a"}]}, "'a' is used more than once"),
        ("- just\n- a list\n", "expected a mapping"),
        ("", "the document is empty"),
        ("source: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_documents_are_refused_with_key_path(tmp_path, doc, expected):
    assert expected in _error(tmp_path, doc)


def test_missing_source_folder(tmp_path):
    assert "source: " in _error(tmp_path, {"source": "nope", "hosts": [{"name": "a"}]})


def test_anchors_and_merge_keys_are_supported(tmp_path):
    _site(tmp_path)
    doc = """
source: site
ssh: &ssh {user: deploy, port: 2222}
hosts:
  - <<: *ssh
    name: web1
  - <<: *ssh
    name: web2
    port: 2223
"""
    client = load_client(client_yml(tmp_path, doc))
    assert [(h["name"], h["port"]) for h in client.hosts] == [("web1", 2222), ("web2", 2223)]


def test_deeply_nested_yaml_is_bounded(tmp_path):
    doc = "source: .\nhosts: [{name: a}]\nexclude: " + "[" * 40 + "]" * 40 + "\n"
    assert "nested deeper" in _error(tmp_path, doc)


def test_huge_file_is_bounded(tmp_path):
    doc = "source: .\nhosts: [{name: a}]\n" + "# padding\n" * 40000
    assert "too large" in _error(tmp_path, doc)


def test_shipped_client_example_is_valid():
    import json

    import jsonschema

    schema = json.loads((Path(__file__).parents[2] / "schema/client.schema.json").read_text())
    for name in ("client1.yml", "local.yml"):
        doc = yaml.safe_load((Path(__file__).parents[2] / "inventories" / name).read_text())
        jsonschema.Draft202012Validator(schema).validate(doc)
