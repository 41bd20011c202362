#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

import os
import sys

# The waiter-cases table (_ext/waiter_cases.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '_ext'))

extensions = [
    'sphinx.ext.autodoc',
    'oslo_config.sphinxext',
    'cliff.sphinxext',
    'openstackdocstheme',
    'waiter_cases',
]

openstackdocs_repo_name = 'x/bdm-guard'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False
project = 'bdm-guard'
copyright = '2026, bdm-guard developers'
master_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'native'
html_theme = 'openstackdocs'
autodoc_member_order = 'bysource'
autodoc_mock_imports = []
